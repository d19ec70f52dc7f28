"""The Streamlit pages of the MNIST digit studio: small UI modules on top of mnist_core.

No TensorFlow here: these modules only call mnist_core's public functions.
"""
