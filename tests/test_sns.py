"""Amazon SNS signatures: only a message SNS signed, for our topic, passes."""

import datetime

import pytest

from subscriptions.sns import SnsMessageInvalid, certificate_url_allowed, sns_message_verify
from tests.support.fake_sns import CERT_URL, TOPIC, documented_string_to_sign, fake_sns


@pytest.fixture(scope="module")
def sns():
    return fake_sns()


@pytest.fixture(autouse=True)
def certificate_fetched(sns):
    sns.install()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_message_sns_signed_for_our_topic_passes(sns, version):
    sns_message_verify(sns.notification({"notificationType": "Bounce"}, version=version), topic_arns=[TOPIC])


def test_the_fake_signs_the_string_aws_documents():
    body = {"Type": "Notification", "MessageId": "m-1", "TopicArn": TOPIC, "Message": "hi", "Timestamp": "t"}
    expected = f"Message\nhi\nMessageId\nm-1\nTimestamp\nt\nTopicArn\n{TOPIC}\nType\nNotification\n"
    assert documented_string_to_sign(body) == expected.encode()
    with_subject = f"Message\nhi\nMessageId\nm-1\nSubject\nS\nTimestamp\nt\nTopicArn\n{TOPIC}\nType\nNotification\n"
    assert documented_string_to_sign({**body, "Subject": "S"}) == with_subject.encode()


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_notification_with_a_subject_passes_and_its_subject_is_signed(sns, version):
    message = sns.notification({"notificationType": "Bounce"}, version=version, subject="Amazon SES Email Event")
    sns_message_verify(message, topic_arns=[TOPIC])
    message["Subject"] = "Something else"
    with pytest.raises(SnsMessageInvalid, match="does not verify"):
        sns_message_verify(message, topic_arns=[TOPIC])


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation"])
def test_a_confirmation_sns_signed_for_our_topic_passes_and_its_token_is_signed(sns, kind):
    message = sns.confirmation(kind)
    sns_message_verify(message, topic_arns=[TOPIC])
    message["Token"] = "0" * 32
    with pytest.raises(SnsMessageInvalid, match="does not verify"):
        sns_message_verify(message, topic_arns=[TOPIC])


def test_a_message_changed_after_signing_fails(sns):
    message = sns.notification({"notificationType": "Delivery"})
    message["Message"] = message["Message"].replace("Delivery", "Complaint")
    with pytest.raises(SnsMessageInvalid, match="does not verify"):
        sns_message_verify(message, topic_arns=[TOPIC])


def test_a_message_signed_by_another_key_fails(sns):
    forger = fake_sns()
    message = forger.notification({"notificationType": "Complaint"})  # names the same certificate URL
    with pytest.raises(SnsMessageInvalid, match="does not verify"):
        sns_message_verify(message, topic_arns=[TOPIC])


def test_a_genuine_message_of_someone_elses_topic_fails(sns):
    """Any AWS account can have SNS sign a message of its own topic."""
    message = sns.notification({"notificationType": "Complaint"}, topic="arn:aws:sns:eu-west-1:999999999999:theirs")
    with pytest.raises(SnsMessageInvalid, match="AMAZON_SES_SNS_TOPIC_ARNS"):
        sns_message_verify(message, topic_arns=[TOPIC])


def test_with_no_topic_configured_nothing_passes(sns):
    with pytest.raises(SnsMessageInvalid):
        sns_message_verify(sns.notification({"notificationType": "Bounce"}), topic_arns=[])


@pytest.mark.parametrize(
    "url",
    [
        "http://sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem",
        "https://evil.example/sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com:8443/cert.pem",
        "https://user@sns.eu-west-1.amazonaws.com/cert.pem",
        "https://sns.eu-west-1.amazonaws.com/cert.txt",
    ],
)
def test_a_certificate_anywhere_but_an_sns_host_is_refused_unfetched(sns, url):
    assert not certificate_url_allowed(url)
    sns.install(url)  # even were it in the cache
    with pytest.raises(SnsMessageInvalid, match="SigningCertURL"):
        sns_message_verify(sns.notification({"notificationType": "Bounce"}, url=url), topic_arns=[TOPIC])


def test_the_documented_certificate_hosts_are_allowed():
    assert certificate_url_allowed(CERT_URL)
    assert certificate_url_allowed("https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem")


def test_an_expired_certificate_fails():
    expired = fake_sns(valid_for_days=-1)
    expired.install()
    with pytest.raises(SnsMessageInvalid, match="not valid now"):
        sns_message_verify(expired.notification({"notificationType": "Bounce"}), topic_arns=[TOPIC])


def test_an_unknown_signature_version_fails(sns):
    message = sns.notification({"notificationType": "Bounce"}, sent=datetime.datetime.now(datetime.UTC))
    message["SignatureVersion"] = "3"
    with pytest.raises(SnsMessageInvalid, match="SignatureVersion"):
        sns_message_verify(message, topic_arns=[TOPIC])
