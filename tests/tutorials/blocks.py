# Blocks as Q&A answers write them: sub-layers kept in a list (and a list of lists), a
# residual connection, no docstrings, no get_config.
import tensorflow as tf


class MLPBlock(tf.keras.layers.Layer):
    def __init__(self, units=32, depth=2):
        super().__init__()
        self.blocks = [tf.keras.layers.Dense(units, activation="relu") for _ in range(depth)]

    def call(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class ResidualBlock(tf.keras.layers.Layer):
    def __init__(self, units=64):
        super(ResidualBlock, self).__init__()
        self.dense1 = tf.keras.layers.Dense(units, activation="relu")
        self.dense2 = tf.keras.layers.Dense(units)
        self.norm = tf.keras.layers.LayerNormalization()

    def call(self, x):
        y = self.dense1(x)
        y = self.dense2(y)
        return tf.nn.relu(self.norm(x + y))


class ResNetMLP(tf.keras.Model):
    def __init__(self, units=16, stages=2):
        super().__init__()
        self.stem = tf.keras.layers.Dense(units)
        self.stages = [
            [tf.keras.layers.Dense(units, activation="relu"), tf.keras.layers.Dense(units)]
            for _ in range(stages)
        ]
        self.head = tf.keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        x = self.stem(x)
        for first, second in self.stages:
            x = x + second(first(x))
        return self.head(x)
