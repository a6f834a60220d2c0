"""The client options for TLS and SASL that the peer scripts share."""


def add_arguments(parser):
    parser.add_argument("--tls-ca", help="connect with TLS, trusting this CA file")
    parser.add_argument("--tls-client", help="PEM_CERT:PEM_KEY to present as the client (with --tls-ca)")
    parser.add_argument("--sasl", help="MECHANISM:USER:PASSWORD over plaintext")


def client_config(args):
    """librdkafka settings for the chosen security, if any."""
    if args.sasl:
        mechanism, user, password = args.sasl.split(":", 2)
        return {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
                "sasl.username": user, "sasl.password": password}
    if args.tls_ca:
        config = {"security.protocol": "SSL", "ssl.ca.location": args.tls_ca}
        if args.tls_client:
            cert, key = args.tls_client.split(":", 1)
            config.update({"ssl.certificate.location": cert, "ssl.key.location": key})
        return config
    return {}
