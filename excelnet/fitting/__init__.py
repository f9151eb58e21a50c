"""Fitting a compiled model: the options (options.py), the problem with its bounds and
constraints (problem.py), the optimisers (optimisers.py) and the engines that run their steps
(engines.py), the loop (train.py), read → compile → train → write back and the sweeps over
it, lr-sweep and compare (pipeline.py), and the history sheet (history.py)."""
