"""The AWS adapters: the Lambda entry point and the SSM parameter that holds API keys."""
