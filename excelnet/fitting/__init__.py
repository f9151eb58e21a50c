"""Fitting a compiled model: the options (options.py), the problem with its bounds and
constraints (problem.py), the optimisers (optimisers.py) and the engines that run their steps
(engines.py), the loop (train.py), read → compile → train → write back (pipeline.py), the
sweeps (sweep.py) and the history sheet (history.py)."""
