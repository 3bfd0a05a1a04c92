"""The bundled demo: a year in the life of Northwind, a sample company, on a fixed clock."""
