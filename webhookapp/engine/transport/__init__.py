"""The HTTP transport of deliveries: the sender (:mod:`.sender`), the SSRF guard it connects
through (:mod:`.ssrf`), and why a call got no answer (:mod:`.failures`). It touches no database:
a prepared call goes in, an attempt result comes out."""
