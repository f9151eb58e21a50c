"""Fitting a compiled model: the options (options.py), the problem with its bounds and
constraints (problem.py), the methods — gradient optimisers (optimisers.py) and the engines
that run their steps (engines.py), linear models by HiGHS (linear.py), the Evolutionary method
(evolutionary.py) — the choice among them and the loop (train.py), Ctrl-C as Solver's Esc
(interrupt.py), read → compile → train → write back and the sweeps over it, lr-sweep and
compare (pipeline.py), and the history sheet (history.py)."""
