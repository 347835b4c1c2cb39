"""The Training menu's windows: the train dialog, the training monitor with live charts, and
the TensorBoard launcher. Training itself runs in a child process (`main.py train --events`)."""
