"""A Django host of reqmgmt (docs/embedding.md): the Desk opened in ``AppConfig.ready()``
on Django's own database, views that map the library's errors to responses."""
