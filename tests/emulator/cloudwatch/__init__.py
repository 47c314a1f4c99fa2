"""CloudWatch behaviour the local cloud corrects in moto: a metric is its namespace, name and exact dimension set."""
