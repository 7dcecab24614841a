"""The web: the app factory, settings, routes, pages, middleware, serialisation and i18n. It sits
on top: nothing imports it but the entry points app.main and app.__main__."""
