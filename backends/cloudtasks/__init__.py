"""The Cloud Tasks v2beta2 backend, the staging proxy: the v1 verbs (`backend`), the
admin verbs (`admin`), and the service's errors mapped where they enter (`errors`)."""
