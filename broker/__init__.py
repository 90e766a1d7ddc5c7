"""The MQTT side: topic tree, ACL rule, embedded amqtt broker and plugins, service clients.

Knows no database: memberships and credentials reach it through `broker.acl.Directory`.
"""
