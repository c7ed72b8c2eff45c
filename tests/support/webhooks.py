"""The campaign and person the webhook tests share: a campaign that counts engagement and
takes unsubscribe emails, and one person following one of its topics."""

from tests.support.factories import CampaignFactory, SubscriberFactory, SubscriptionFactory, TopicFactory

EMAIL = "barnaby.quenington@example.com"
NAME = "Barnaby"
INBOUND = "unsubscribe@newsletter.example.org"


def webhook_campaign():
    return CampaignFactory(tracking_mode="aggregate", inbound_unsubscribe=True, inbound_address=INBOUND)


def webhook_person(campaign):
    subscriber = SubscriberFactory(campaign=campaign, email=EMAIL, first_name=NAME)
    SubscriptionFactory(subscriber=subscriber, topic=TopicFactory(campaign=campaign))
    return subscriber
