"""Bounces and complaints: VERP envelope senders, reading the bounce
mailboxes, classifying what came back and acting on it, and the events
kept of it.

- ``verp``: the signed per-delivery envelope sender, and finding it again;
- ``classify``: a message's bytes -> hard, soft, complaint, auto-reply, or not a bounce;
- ``actions``: who it is about and what it does to them (Mailman's rules);
- ``mailboxes``: Maildir, mbox, IMAP and POP3;
- ``reading``: ``publisher bounces``, every mailbox in turn;
- ``webhooks``: the notifications of Amazon SES, Mailgun and Postmark.

Only ``verp`` is imported by the send; the rest load when bounces are read.
"""
