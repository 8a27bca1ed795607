"""A faithful local imitation of the vendor APIs, served over HTTP from one synthetic world."""
