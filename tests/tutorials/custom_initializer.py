# The custom-initializer tutorial, as published: an Initializer subclass with get_config,
# and a SimpleDense layer whose __init__ takes no **kwargs and calls super().__init__().
import tensorflow as tf
from tensorflow import keras


class ExampleRandomNormal(keras.initializers.Initializer):
    def __init__(self, mean, stddev):
        self.mean = mean
        self.stddev = stddev

    def __call__(self, shape, dtype=None):
        return tf.random.normal(shape, mean=self.mean, stddev=self.stddev, dtype=dtype)

    def get_config(self):  # To support serialization
        return {"mean": self.mean, "stddev": self.stddev}


class SimpleDense(keras.layers.Layer):
    def __init__(self, units=32, activation=None, kernel_initializer="glorot_uniform"):
        super().__init__()
        self.units = units
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        self.w = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer=self.kernel_initializer,
            trainable=True,
        )
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return self.activation(tf.matmul(inputs, self.w) + self.b)
