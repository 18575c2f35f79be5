"""The bottom layer: the model seam (Messages-API types) and pricing.

Nothing here imports any other package of the project.
"""
