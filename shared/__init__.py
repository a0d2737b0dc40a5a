"""The Mission Control pipeline package, imported by the web app and both functions.

Modules that need scikit-learn (pipeline, evaluation, bundle) are imported explicitly by
the code that computes; importing ``shared`` itself stays light so the web app can start
without scikit-learn installed.
"""

__version__ = "0.1.0"
