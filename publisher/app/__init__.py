"""The application: the command line, the scheduler, the web server and `publisher init`."""
