"""Shared test setup: one torch thread (the CI machine has 2 cores) and deterministic seeds."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# The smallest real training run (digits at 8 px, the 'mbv3_test' space, 2 steps per epoch): tests that train
# import it (`from conftest import TINY_RECIPE`) and copy it before changing anything.
TINY_RECIPE = {
    "name": "tiny", "seed": 0,
    "supernet": {"name": "mbv3_test"},
    "data": {"name": "digits", "image_size": 8, "batch_size": 32, "max_train_samples": 64, "max_eval_samples": 40},
    "train": {"sampler": "fair", "epochs": 1, "threads": 1, "accelerator": "cpu", "log_every_n_steps": 1,
              "optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9}, "scheduler": None},
}


def image_folder(root, per_class: int):
    """An ImageFolder tree of random 12x10 RGB PNGs, classes cat, dog and emu (`from conftest import
    image_folder`); returns `root`."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for c in ("cat", "dog", "emu"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A supernet checkpoint of mbv3_test trained 1 epoch on 64 digits at 8x8 (shared: copy it before writing beside
    it, e.g. an evaluation table)."""
    from oneshot.recipe import Recipe
    from oneshot.training.trainer import train

    out = tmp_path_factory.mktemp("tiny_checkpoint")
    recipe = Recipe.from_dict({
        "name": "tiny", "output_dir": str(out), "supernet": {"name": "mbv3_test"},
        "data": {"name": "digits", "image_size": 8, "batch_size": 32, "max_train_samples": 64, "max_eval_samples": 40},
        "train": {"epochs": 1, "threads": 1, "accelerator": "cpu"},
    })
    return train(recipe, progress=False)
