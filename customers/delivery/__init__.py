"""Webhook delivery: signing, sending with retries, and the relay that reads the outbox.

`signing` makes the Standard Webhooks headers; `sender` POSTs one event and says what
the answer means (delivered, retry when, or the endpoint gone); `relay` runs beside a
sqlite store and delivers what its `events` table holds; the AWS stream function
(`customers.aws.stream_handler`) delivers from the table's DynamoDB stream with the same
sender.
"""
