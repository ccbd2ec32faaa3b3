# The Keras 2 "Writing your own Keras layers" page, as published.
from keras import backend as K
from keras.engine.topology import Layer


class MyLayer(Layer):
    def __init__(self, output_dim, **kwargs):
        self.output_dim = output_dim
        super(MyLayer, self).__init__(**kwargs)

    def build(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=(input_shape[1], self.output_dim), initializer="uniform"
        )
        super(MyLayer, self).build(input_shape)

    def call(self, x):
        return K.dot(x, self.kernel)
