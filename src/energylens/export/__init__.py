"""Export of fitted models: SymPy expressions, LaTeX and NumPy callables (the model never formats itself)."""
