"""The numbers a fit uses when it is not told otherwise (the API's and the command's)."""

EPOCHS = 1000
LR = 0.1  # the lesson's learning rate (gd's own step starts there)
METHODS = ("gd", "adam", "lbfgs")  # see excelnet.fitting.optimisers
METHOD = "lbfgs"  # the default; docs/solver.md, "Methods", says why
