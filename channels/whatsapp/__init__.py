"""The WhatsApp channel, through Twilio's Messages API and its signed webhooks."""
