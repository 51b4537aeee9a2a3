"""The code that touches Faust and aiokafka internals (see the issue "One folder per
pipeline"); pipelines reach Kafka only through what lives here."""
