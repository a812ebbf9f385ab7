"""The HTTP layer over ``service.qa``: app, routes, schemas, problems, middleware, metrics, logs, the page."""
