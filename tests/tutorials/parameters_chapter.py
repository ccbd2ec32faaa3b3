# The "access, initialize and share parameters" chapter: a tf.keras.Model with sub-layers
# made in __init__ and TensorFlow's own initializers, and a factory function for an initializer.
import tensorflow as tf

from kinit_cli import register_initializer


class Linear(tf.keras.Model):
    def __init__(self, units=16):
        super().__init__()
        self.hidden = tf.keras.layers.Dense(
            units,
            activation=tf.nn.relu,
            kernel_initializer=tf.random_normal_initializer(mean=0, stddev=0.01),
            bias_initializer=tf.zeros_initializer(),
        )
        self.out = tf.keras.layers.Dense(10, bias_initializer=tf.ones_initializer())

    def call(self, inputs):
        return tf.nn.softmax(self.out(self.hidden(inputs)))


class MyDense(tf.keras.Model):
    def __init__(self, units):
        super().__init__()
        self.units = units

    def build(self, X_shape):
        self.weight = self.add_weight(
            name="weight",
            shape=[X_shape[-1], self.units],
            initializer=tf.random_normal_initializer(),
        )
        self.bias = self.add_weight(
            name="bias", shape=[self.units], initializer=tf.zeros_initializer()
        )

    def call(self, X):
        linear = tf.matmul(X, self.weight) + self.bias
        return tf.nn.relu(linear)


@register_initializer
def my_init():
    return tf.keras.initializers.Ones()
