"""factory_boy factories for the domain model."""

import factory
from django.contrib.auth import get_user_model

from subscriptions.models import Campaign, PrivacyNotice, SignupForm, Subscriber, Subscription, Topic


class CampaignFactory(factory.django.DjangoModelFactory[Campaign]):
    class Meta:
        model = Campaign

    slug = factory.Sequence(lambda n: f"campaign-{n}")
    name = factory.Sequence(lambda n: f"Campaign {n}")
    description = "Updates about a public campaign."
    controller_name = "Example Department"
    contact_email = "contact@example.org"
    sender_name = "Campaign updates"
    sender_email = factory.LazyAttribute(lambda c: f"updates@{c.slug}.example.org")


class PrivacyNoticeFactory(factory.django.DjangoModelFactory[PrivacyNotice]):
    class Meta:
        model = PrivacyNotice

    campaign = factory.SubFactory(CampaignFactory)
    version = factory.Sequence(lambda n: n + 1)
    url = "https://example.org/privacy"
    summary = "We keep your email address until you unsubscribe or the campaign ends."
    retention_summary = "Until you unsubscribe or the campaign ends."


class TopicFactory(factory.django.DjangoModelFactory[Topic]):
    class Meta:
        model = Topic

    campaign = factory.SubFactory(CampaignFactory)
    slug = factory.Sequence(lambda n: f"topic-{n}")
    name = factory.Sequence(lambda n: f"Topic {n}")
    kind = Topic.Kind.GENERAL


class SignupFormFactory(factory.django.DjangoModelFactory[SignupForm]):
    class Meta:
        model = SignupForm
        skip_postgeneration_save = True

    campaign = factory.SubFactory(CampaignFactory)
    slug = factory.Sequence(lambda n: f"form-{n}")
    title = "Get updates"
    consent_wording = "I agree to receive updates by email. I can unsubscribe at any time."

    @factory.post_generation
    def topics(self, create, extracted, **kwargs):
        if create and extracted:
            self.topics.set(extracted)


class SubscriberFactory(factory.django.DjangoModelFactory[Subscriber]):
    class Meta:
        model = Subscriber

    campaign = factory.SubFactory(CampaignFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    first_name = "Alex"
    status = Subscriber.Status.ACTIVE


class SubscriptionFactory(factory.django.DjangoModelFactory[Subscription]):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    topic = factory.SubFactory(TopicFactory, campaign=factory.SelfAttribute("..subscriber.campaign"))
    source = Subscription.Source.PAGE


class StaffUserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@staff.example.org")
    is_staff = True
    is_superuser = True
    password = factory.django.Password("correct horse battery staple")
