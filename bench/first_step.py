"""A kinit plugin for bench/train_vs_fit.py: a callback that writes the wall-clock time at
which the first training call ended to the file named by $KINIT_BENCH_FIRST_STEP, so the
bench can tell start-up to the first step the same way for kinit and the plain script."""

import os
import time

import keras


class FirstStep(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.done = False

    def on_train_batch_end(self, batch, logs=None):
        if not self.done:
            self.done = True
            with open(os.environ["KINIT_BENCH_FIRST_STEP"], "w") as f:
                f.write(repr(time.time()))
