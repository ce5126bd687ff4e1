"""Training: the settings and TrainConfig (config), the loop for both schemes (loop) and registering
a finished run as a model (register).

May import core.evaluation and every wing below it; never video, jobs or the CLI.
"""
