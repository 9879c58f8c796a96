from django.apps import AppConfig


class FulfillmentQueueConfig(AppConfig):
    name = "fulfillment_queue"
    label = "fulfillment_queue"
    verbose_name = "Fulfillment queue (paced calls to the warehouse)"
