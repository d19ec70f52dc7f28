"""The Streamlit pages of the MNIST digit studio: small UI modules on top of mnist_core.

No TensorFlow here: these modules only call mnist_core's public functions.
"""

from mnist_core import load_tensorflow

load_tensorflow()  # first, so the server prints TensorFlow's load lines once, and its training process none
