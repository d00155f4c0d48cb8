"""The EnergyLens closed form: terms, fitting, the estimator and its JSON model file."""
