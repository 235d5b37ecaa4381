"""Wire contracts of the plant: the terminal messages (MQTT in) and the ERP's orders and
confirmations. Schemas only, above the domain and below everything that speaks them."""
