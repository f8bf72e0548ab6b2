"""Stage 2, training: path samplers, the supernet LightningModule, optimizer factories and checkpoint I/O.

`path_samplers.py` chooses the subnets each step trains (fair, uniform, sandwich); `optim.py` builds optimizers and
LR schedules from specs; `module.py` is the multi-path training step; `checkpoint.py` writes and reads supernet
checkpoints; `trainer.py` is `train(recipe)`; `few_shot.py` adds the few-shot phase (`train.few_shot`). Nothing
here knows of scoring, search or the pipeline.
"""

from oneshot import _shadow  # noqa: F401  (a clear error when 'oneshot' is a stray folder)
