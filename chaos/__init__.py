"""`make chaos`: kill and fault run of the whole system on a 3-node Apache Kafka cluster."""
