"""course_lib: the tested reference implementations behind the course's notebooks.

One module per concept of the book: ``data``, ``runtime``, ``training``, ``checkpoints``,
``plotting``, ``autoencoder``, ``generative``, ``vae``, ``elbo``, ``gradient_estimators``, ``vq``,
``metrics``, ``lpips``, ``fid``, ``resizing``, ``classifier``, and ``exercises`` (the checkers).
"""

__version__ = "0.1.0"
