"""The Mission Control web app: renders, validates and stores; the functions compute."""
