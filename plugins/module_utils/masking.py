# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An AnsibleModule that knows the secrets hidden in its arguments before it checks them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule


class SecretMaskingModule(AnsibleModule):
    """AnsibleModule that masks what secrets_in(params) finds (say, the password in a URL) in whatever it returns,
    also when it refuses the arguments: the invocation shown at -vvv then holds them as they were given."""

    def __init__(self, secrets_in, **kwargs):
        self._secrets_in = secrets_in
        super(SecretMaskingModule, self).__init__(**kwargs)

    def exit_json(self, **kwargs):
        self.no_log_values.update(self._secrets_in(self.params))
        super(SecretMaskingModule, self).exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        self.no_log_values.update(self._secrets_in(self.params))
        super(SecretMaskingModule, self).fail_json(msg, **kwargs)
