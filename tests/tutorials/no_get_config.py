# The custom-initializer tutorial with the line it marks "To support serialization" left out.
import tensorflow as tf


class ScaledNormal(tf.keras.initializers.Initializer):
    def __init__(self, mean, stddev):
        self.mean = mean
        self.stddev = stddev

    def __call__(self, shape, dtype=None):
        return tf.random.normal(shape, mean=self.mean, stddev=self.stddev, dtype=dtype)
