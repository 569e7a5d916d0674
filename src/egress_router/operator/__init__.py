"""The EgressRouter operator: a pure model of what each router wants, and kopf handlers."""
