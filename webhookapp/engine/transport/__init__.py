"""The HTTP transport of deliveries: the sender (:mod:`.sender`) and the SSRF guard it connects
through (:mod:`.ssrf`). It touches no database: a prepared call goes in, an attempt result comes out."""
