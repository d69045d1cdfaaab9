"""Wine quality: the schema, data, models and model-store contract shared by training and serving."""
