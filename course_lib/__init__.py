"""course_lib: the tested reference implementations behind the course's notebooks.

One module per concept of the book, in book order: ``runtime``, ``validation``, ``data``, ``training``,
``checkpoints``, ``downloads``, ``plotting``; ``autoencoder``; ``toy_data``, ``flows``, ``gan``;
``likelihoods``, ``vae``, ``elbo``, ``gradient_estimators``, ``pixelcnn``; ``vq``; ``metrics``, ``lpips``,
``inception``, ``classifier``, ``resizing``, ``fid``, ``kid``, ``precision_recall``, ``evaluation``;
``exercises`` (the checkers) and ``grade`` (the grader).
"""

__version__ = "0.1.0"
