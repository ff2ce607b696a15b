"""publisher: posts written as files become RSS 2.0, Atom 1.0 and JSON Feed 1.1 feeds.

The stages, one module each: ``readers`` turn bytes into ``model.Post``;
``content`` gathers posts and gives them identity from the state ``store``;
``feeds`` serialises a ``model.Site``; ``writer`` puts bytes on disk
atomically; ``build`` ties them together; ``cli`` is the command line.
"""

__version__ = "0.1.0"
