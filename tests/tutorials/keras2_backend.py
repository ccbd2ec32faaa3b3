# The same layer with its import brought up to date but K.dot left as Keras 2 wrote it.
from keras import backend as K
from keras.layers import Layer


class DotLayer(Layer):
    def __init__(self, output_dim, **kwargs):
        self.output_dim = output_dim
        super(DotLayer, self).__init__(**kwargs)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[1], self.output_dim), initializer="uniform"
        )

    def call(self, x):
        return K.dot(x, self.kernel)
