class DevStackError(RuntimeError):
    """A problem starting the local stack, worded for the person who ran the command.

    The CLI prints the message without a traceback, so it must say what is wrong and what to do.
    """
