"""The numbers a fit uses when it is not told otherwise (the API's and the command's)."""

EPOCHS = 1000
LR = 0.1
