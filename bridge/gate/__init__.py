"""What every way in passes through before it reaches the queues.

    bodies   request bodies read within the body budget, malformed ones refused (400)
    hosts    the Host header every HTTP request is checked for
"""
